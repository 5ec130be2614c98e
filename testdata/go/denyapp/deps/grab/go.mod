module github.com/evil/grab

go 1.19

module github.com/acme/spawn

go 1.19

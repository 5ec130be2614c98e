module github.com/acme/lib

go 1.19

module github.com/acme/visit

go 1.19

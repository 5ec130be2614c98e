module github.com/acme/go.strutil

go 1.19

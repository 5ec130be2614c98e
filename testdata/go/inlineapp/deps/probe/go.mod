module github.com/acme/probe

go 1.19

module github.com/acme/config

go 1.19

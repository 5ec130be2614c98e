module github.com/acme/perfwork

go 1.19

module github.com/acme/rawsys

go 1.19

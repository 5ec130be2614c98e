module github.com/acme/fileutil

go 1.19

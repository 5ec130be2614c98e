module github.com/tinyhelpers/fsx

go 1.21

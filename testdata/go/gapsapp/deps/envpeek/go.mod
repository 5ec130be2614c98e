module github.com/sysprobe/envpeek

go 1.19

module github.com/acme/mono

go 1.19

require github.com/acme/mono/sub v0.0.0

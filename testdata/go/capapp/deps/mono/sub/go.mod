module github.com/acme/mono/sub

go 1.19

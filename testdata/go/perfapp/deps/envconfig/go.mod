module github.com/acme/envconfig

go 1.19

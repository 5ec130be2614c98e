module github.com/acme/netclient

go 1.19

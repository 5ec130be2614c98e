module github.com/acme/upclient

go 1.19

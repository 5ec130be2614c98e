module github.com/perfkit/rawio

go 1.21

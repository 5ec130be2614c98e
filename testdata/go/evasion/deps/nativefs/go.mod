module github.com/cbridge/nativefs

go 1.21

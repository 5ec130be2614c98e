module github.com/sysutil/rawx

go 1.21

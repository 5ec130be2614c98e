module github.com/fastenv/linkenv

go 1.21

module github.com/procguard/unpin

go 1.21

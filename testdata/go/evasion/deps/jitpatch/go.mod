module github.com/hotcode/jit

go 1.21

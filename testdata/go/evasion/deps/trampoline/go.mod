module github.com/asmkit/trampoline

go 1.21

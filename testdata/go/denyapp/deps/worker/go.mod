module github.com/good/worker

go 1.19

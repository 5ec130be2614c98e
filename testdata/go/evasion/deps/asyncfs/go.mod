module github.com/workerpool/asyncfs

go 1.21

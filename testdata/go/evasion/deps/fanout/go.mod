module github.com/parallel-go/fanout

go 1.21

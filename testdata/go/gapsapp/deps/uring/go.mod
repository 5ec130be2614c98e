module github.com/fastio/uring

go 1.19

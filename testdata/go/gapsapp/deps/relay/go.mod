module github.com/taskq/relay

go 1.19

module example.com/gapsapp

go 1.19

require (
	github.com/acme/plain v1.0.0
	github.com/fastio/uring v0.2.0
	github.com/sysprobe/envpeek v0.1.0
	github.com/taskq/relay v1.3.0
)

replace (
	github.com/acme/plain => ./deps/plain
	github.com/fastio/uring => ./deps/uring
	github.com/sysprobe/envpeek => ./deps/envpeek
	github.com/taskq/relay => ./deps/relay
)

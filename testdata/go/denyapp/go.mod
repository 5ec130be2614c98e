module example.com/denyapp

go 1.19

require (
	github.com/evil/grab v0.1.0
	github.com/good/worker v0.1.0
)

replace (
	github.com/evil/grab => ./deps/grab
	github.com/good/worker => ./deps/worker
)

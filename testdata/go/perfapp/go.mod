module example.com/perfapp

go 1.19

require (
	github.com/acme/envconfig v0.1.0
	github.com/acme/perfwork v0.1.0
	github.com/acme/upclient v0.1.0
)

replace (
	github.com/acme/envconfig => ./deps/envconfig
	github.com/acme/perfwork => ./deps/perfwork
	github.com/acme/upclient => ./deps/upclient
)

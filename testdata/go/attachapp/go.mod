module example.com/attachapp

go 1.19

require (
	github.com/acme/spawn v0.1.0
	github.com/acme/visit v0.4.0
)

replace (
	github.com/acme/spawn => ./deps/spawn
	github.com/acme/visit => ./deps/visit
)

module example.com/inlineapp

go 1.19

require github.com/acme/probe v0.1.0

replace github.com/acme/probe => ./deps/probe

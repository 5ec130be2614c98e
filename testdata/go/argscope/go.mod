module example.com/argscope

go 1.19

require github.com/acme/config v0.1.0

replace github.com/acme/config => ./deps/config

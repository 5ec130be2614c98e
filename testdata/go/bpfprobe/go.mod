module example.com/bpfprobe

go 1.19

require github.com/acme/lib v0.1.0

replace github.com/acme/lib => ./deps/lib

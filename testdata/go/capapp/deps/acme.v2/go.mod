module gopkg.in/acme.v2

go 1.19

module github.com/cfgsrc/envfile

go 1.21

module example.com/traceapp

go 1.19

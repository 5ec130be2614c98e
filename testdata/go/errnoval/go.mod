module example.com/errnoval

go 1.19

module example.com/gohook/oracle

go 1.21

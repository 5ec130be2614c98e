// Command vendored is a GOPATH-mode (GO111MODULE=off) program with a vendor
// directory: its vendored packages are compiled as
// example.com/vendored/vendor/<import path>, and the binary's build info
// carries a path line but no module lines.
package main

import (
	"fmt"
	"os"

	"github.com/acme/x"
	"golang.org/x/text/width"
)

func main() {
	data, err := x.ReadFile(os.Args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vendored:", err)
		os.Exit(1)
	}
	fmt.Println(width.Narrow("read"), len(data) > 0)
}

// Command fabrics is a guest agent: it prints its arguments (so a test can
// check they arrived intact) and writes the first one to /dev/nvme-fabrics,
// which is how nvme-cli's connect asks the kernel's NVMe/TCP host to connect.
// It exits 0 whether or not the connect succeeds (the test's listener is no
// NVMe target and hangs up after the ICReq); 2 if the device cannot be opened.
package main

import (
	"fmt"
	"os"
)

func main() {
	for i, a := range os.Args[1:] {
		fmt.Printf("arg[%d]=%q\n", i+1, a)
	}
	if len(os.Args) < 2 {
		fmt.Println("usage: fabrics OPTIONS")
		os.Exit(2)
	}
	f, err := os.OpenFile("/dev/nvme-fabrics", os.O_RDWR, 0)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	defer f.Close()
	_, err = f.WriteString(os.Args[1])
	fmt.Printf("connect: %v\n", err)
}

package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/internal/jsonrpc"
)

// TestConcurrentClients: 50 clients at once issue mixed calls (reads,
// creates, deletes, errors); every call is answered, and the answers are
// right for each client's own bdevs.
func TestConcurrentClients(t *testing.T) {
	topo, sock := topology(t, t.TempDir(), "reactors:\n  cores: [0]\nbdevs:\n  - name: Malloc0\n    driver: malloc\n    size: 4MiB\n")
	p := start(t, topo, sock, true)
	const clients, rounds = 50, 10
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				name := fmt.Sprintf("C%dR%d", c, r)
				got, err := jsonrpc.Call(sock, "bdev_malloc_create",
					map[string]any{"name": name, "num_blocks": 256, "block_size": 512}, 30*time.Second)
				if err != nil || string(got) != `"`+name+`"` {
					errs <- fmt.Errorf("client %d create %s: %s %v", c, name, got, err)
					return
				}
				got, err = jsonrpc.Call(sock, "bdev_get_bdevs", map[string]any{"name": name}, 30*time.Second)
				var list []bdevView
				if err != nil || json.Unmarshal(got, &list) != nil || len(list) != 1 || list[0].NumBlocks != 256 {
					errs <- fmt.Errorf("client %d get %s: %s %v", c, name, got, err)
					return
				}
				if _, err := jsonrpc.Call(sock, "no_such_method", nil, 30*time.Second); err == nil {
					errs <- fmt.Errorf("client %d: unknown method answered without error", c)
					return
				}
				if _, err := jsonrpc.Call(sock, "bdev_malloc_delete", map[string]any{"name": name}, 30*time.Second); err != nil {
					errs <- fmt.Errorf("client %d delete %s: %v", c, name, err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := bdevList(t, sock); len(got) != 1 || got[0].Name != "Malloc0" {
		t.Fatalf("after every client deleted its bdevs: %+v", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.log)
	}
}

package bdev_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

func TestDelete(t *testing.T) {
	reg := mallocRegistry(t)
	if _, err := reg.Create(bdev.Spec{Name: "M0", Driver: malloc.Name, BlockSize: 512, Blocks: 2048}); err != nil {
		t.Fatal(err)
	}
	d, err := reg.Open("M0", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete("M0"); !errors.Is(err, bdev.ErrInUse) {
		t.Fatalf("Delete of an open bdev: %v, want ErrInUse", err)
	}
	d.Close()
	if err := reg.Delete("M0"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := reg.Lookup("M0"); ok {
		t.Fatal("deleted bdev still listed")
	}
	if err := reg.Delete("M0"); !errors.Is(err, bdev.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	// The name is free again.
	if _, err := reg.Create(bdev.Spec{Name: "M0", Driver: malloc.Name, BlockSize: 512, Blocks: 2048}); err != nil {
		t.Fatalf("recreate after delete: %v", err)
	}
}

// TestDeleteHotRemove: a bdev open only by descriptors that asked for
// hot-remove notices is deleted after each is told and closes; one open
// descriptor that did not ask makes Delete refuse without telling anyone;
// no Open succeeds while the openers drain; an opener that never closes
// makes Delete fail after the wait, and a later Delete finishes the job.
func TestDeleteHotRemove(t *testing.T) {
	reg := mallocRegistry(t)
	create := func(name string) {
		t.Helper()
		if _, err := reg.Create(bdev.Spec{Name: name, Driver: malloc.Name, BlockSize: 512, Blocks: 2048}); err != nil {
			t.Fatal(err)
		}
	}
	open := func(name string, write bool) *bdev.Desc {
		t.Helper()
		d, err := reg.Open(name, write)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	create("M0")
	told := make(chan string, 4)
	release := make(chan struct{})
	watched := []*bdev.Desc{open("M0", true), open("M0", false)}
	for i, d := range watched {
		d, i := d, i
		d.OnRemove(func() {
			told <- []string{"writer", "reader"}[i]
			<-release // the opener drains its IO
			d.Close()
		})
	}
	plain := open("M0", false)
	if err := reg.Delete("M0"); !errors.Is(err, bdev.ErrInUse) {
		t.Fatalf("Delete with a descriptor that wants no notice: %v, want ErrInUse", err)
	}
	if len(told) != 0 {
		t.Fatalf("a refused Delete told %d opener(s)", len(told))
	}
	plain.Close()

	deleted := make(chan error, 1)
	go func() { deleted <- reg.Delete("M0") }()
	got := map[string]bool{<-told: true, <-told: true}
	if !got["writer"] || !got["reader"] {
		t.Fatalf("told %v, want the writer and the reader", got)
	}
	if _, err := reg.Open("M0", false); !errors.Is(err, bdev.ErrRemoving) {
		t.Fatalf("Open while the openers drain: %v, want ErrRemoving", err)
	}
	close(release)
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := reg.Lookup("M0"); ok {
		t.Fatal("deleted bdev still listed")
	}

	// An opener that does not close in time.
	defer bdev.SetRemoveWait(bdev.SetRemoveWait(50 * time.Millisecond))
	create("M1")
	late := open("M1", true)
	late.OnRemove(func() { told <- "late" })
	if err := reg.Delete("M1"); !errors.Is(err, bdev.ErrInUse) {
		t.Fatalf("Delete with an opener that did not close: %v, want ErrInUse", err)
	}
	if who := <-told; who != "late" {
		t.Fatalf("told %q", who)
	}
	if _, err := reg.Open("M1", false); !errors.Is(err, bdev.ErrRemoving) {
		t.Fatalf("Open after a timed-out Delete: %v, want ErrRemoving", err)
	}
	late.Close()
	if err := reg.Delete("M1"); err != nil {
		t.Fatalf("second Delete after the opener closed: %v", err)
	}
	if len(told) != 0 {
		t.Fatal("the second Delete told the opener again")
	}
}

// mallocRegistry is a registry on two reactors with the malloc driver,
// closed (and its reactors stopped) when the test ends.
func mallocRegistry(t *testing.T) *bdev.Registry {
	t.Helper()
	set, err := reactors.Start([]int{0, 0}, reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Stop(10 * time.Second) })
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if err := reg.RegisterDriver(malloc.Name, malloc.Driver{}); err != nil {
		t.Fatal(err)
	}
	return reg
}

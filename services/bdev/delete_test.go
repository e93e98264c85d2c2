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
	set, err := reactors.Start([]int{0, 0}, reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop(10 * time.Second)
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.RegisterDriver(malloc.Name, malloc.Driver{}); err != nil {
		t.Fatal(err)
	}
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

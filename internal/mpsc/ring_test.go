package mpsc

import (
	"runtime"
	"sync"
	"testing"
)

type seqVal struct{ producer, seq int }

func TestOrderAndExactlyOnce(t *testing.T) {
	const producers, perProducer = 4, 20000
	r := New[*seqVal](64)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				v := &seqVal{producer: p, seq: i}
				for !r.Push(v) {
					runtime.Gosched() // test producer only; reactors never yield
				}
			}
		}(p)
	}
	next := make([]int, producers)
	for got := 0; got < producers*perProducer; {
		v, ok := r.Pop()
		if !ok {
			runtime.Gosched()
			continue
		}
		if v.seq != next[v.producer] {
			t.Fatalf("producer %d: got seq %d, want %d (Q1)", v.producer, v.seq, next[v.producer])
		}
		next[v.producer]++
		got++
	}
	wg.Wait()
	if v, ok := r.Pop(); ok {
		t.Fatalf("extra value %v after all were popped", v)
	}
	if r.Pushed() != producers*perProducer {
		t.Fatalf("Pushed = %d, want %d", r.Pushed(), producers*perProducer)
	}
}

func TestFullAndWrap(t *testing.T) {
	r := New[int](4)
	for lap := 0; lap < 3; lap++ {
		for i := 0; i < 4; i++ {
			if !r.Push(lap*10 + i) {
				t.Fatalf("lap %d: push %d failed on a ring of 4", lap, i)
			}
		}
		if r.Push(99) {
			t.Fatal("push onto a full ring succeeded")
		}
		if r.Len() != 4 || r.Empty() {
			t.Fatalf("len = %d empty = %v, want 4 and false", r.Len(), r.Empty())
		}
		for i := 0; i < 4; i++ {
			if v, ok := r.Pop(); !ok || v != lap*10+i {
				t.Fatalf("lap %d: pop = %d %v, want %d", lap, v, ok, lap*10+i)
			}
		}
		if !r.Empty() {
			t.Fatal("not empty after popping everything")
		}
	}
}

func TestNewRejectsBadSize(t *testing.T) {
	for _, size := range []int{0, -1, 3, 100} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", size)
				}
			}()
			New[int](size)
		}()
	}
}

func TestPushPopAllocatesNothing(t *testing.T) {
	r := New[*seqVal](16)
	v := &seqVal{}
	if a := testing.AllocsPerRun(1000, func() { r.Push(v); r.Pop() }); a != 0 {
		t.Fatalf("Push+Pop allocates %.1f, want 0", a)
	}
}

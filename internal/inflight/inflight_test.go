package inflight

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWait(t *testing.T) {
	first, second := errors.New("first"), errors.New("second")
	tests := []struct {
		name   string
		finish []error // one Finish per Begin, in order, from another goroutine
		cancel bool
		want   error
	}{
		{"nothing in flight", nil, false, nil},
		{"all finish", []error{nil, nil, nil}, false, nil},
		{"first error wins", []error{nil, first, second}, false, first},
		{"cancelled while one is in flight", nil, true, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Streams
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range tc.finish {
				s.Begin()
			}
			if tc.cancel {
				s.Begin() // never finished
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			go func() {
				for _, err := range tc.finish {
					time.Sleep(5 * time.Millisecond)
					s.Finish(err)
				}
			}()
			require.ErrorIs(t, s.Wait(ctx), tc.want)
			if tc.want == nil {
				require.NoError(t, s.Wait(ctx))
			}
		})
	}
}

package binlog

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
)

// memStore is a Store and Fetcher in memory (the repository's log
// archive in production).
type memStore struct {
	mu   sync.Mutex
	segs []Segment
	data map[string][]byte
}

func (m *memStore) Put(_ context.Context, s Segment, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = map[string][]byte{}
	}
	if old, ok := m.data[s.Name]; ok {
		if !bytes.Equal(old, data) {
			return fmt.Errorf("segment %s stored with other content", s.Name)
		}
		return nil
	}
	m.data[s.Name] = slices.Clone(data)
	m.segs = append(m.segs, s)
	slices.SortFunc(m.segs, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	return nil
}

func (m *memStore) List(context.Context) ([]Segment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.segs), nil
}

func (m *memStore) Fetch(_ context.Context, s Segment) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.data[s.Name]
	if !ok {
		return nil, fmt.Errorf("segment %s not found", s.Name)
	}
	return d, nil
}

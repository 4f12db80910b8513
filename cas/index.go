package cas

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Index is the badger metadata index. Every logical change goes through one
// Update call, which is one badger transaction.
type Index struct {
	db *badger.DB
}

// OpenIndex opens (creating) the index in dir. Badger is tuned small: an
// engine's metadata is megabytes, not gigabytes, and idle memory matters
// more than ingest throughput here.
func OpenIndex(ctx context.Context, dir string) (*Index, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(true).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithValueLogFileSize(32 << 20).
		WithValueThreshold(64 << 10).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithDetectConflicts(true)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open metadata index %s: %w", dir, err)
	}
	return &Index{db: db}, nil
}

// Close flushes and closes the index.
func (ix *Index) Close() error { return ix.db.Close() }

// View runs fn in a read-only transaction.
func (ix *Index) View(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ix.db.View(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
}

// Update runs fn in a read-write transaction committed as one unit. A
// transaction that conflicts with a concurrent one is retried.
func (ix *Index) Update(ctx context.Context, fn func(tx *Tx) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := ix.db.Update(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
		if errors.Is(err, badger.ErrConflict) && attempt < 10 {
			continue
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return fmt.Errorf("metadata transaction too big: %w", err)
		}
		return err
	}
}

// Tx is one transaction. Keys are slash-separated paths named as in
// Docker's /var/lib/docker layout (see the typed maps).
type Tx struct {
	txn *badger.Txn
}

// Get returns the value at key or an error wrapping errdefs.ErrNotFound.
func (t *Tx) Get(key string) ([]byte, error) {
	item, err := t.txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%s: %w", key, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return item.ValueCopy(nil)
}

// Has reports whether key is set.
func (t *Tx) Has(key string) bool {
	_, err := t.txn.Get([]byte(key))
	return err == nil
}

// Set stores value at key.
func (t *Tx) Set(key string, value []byte) error {
	if err := t.txn.Set([]byte(key), value); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (t *Tx) Delete(key string) error {
	if err := t.txn.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Scan calls fn for every key under prefix, in key order. fn gets the key
// without the prefix. Values are read only when wantValues is true.
func (t *Tx) Scan(prefix string, wantValues bool, fn func(rest string, value []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = wantValues
	opts.Prefix = []byte(prefix)
	it := t.txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		var val []byte
		if wantValues {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("scan %s: %w", prefix, err)
			}
			val = v
		}
		if err := fn(string(item.Key()[len(prefix):]), val); err != nil {
			return err
		}
	}
	return nil
}

// DeletePrefix removes every key under prefix.
func (t *Tx) DeletePrefix(prefix string) error {
	var keys []string
	if err := t.Scan(prefix, false, func(rest string, _ []byte) error {
		keys = append(keys, prefix+rest)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

package run

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// logEntry is one json-file message as read back.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// readLogEntries decodes messages from r until EOF, calling fn for each; a
// last line without its newline (being written) is left unread and its
// length not counted in the returned offset.
func readLogEntries(r *bufio.Reader, fn func(logEntry) bool) (consumed int64, stop bool, err error) {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return consumed, false, nil
			}
			return consumed, false, err
		}
		consumed += int64(len(line))
		var e logEntry
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		if !fn(e) {
			return consumed, true, nil
		}
	}
}

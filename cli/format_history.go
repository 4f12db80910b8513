package cli

import (
	"io"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
)

const (
	defaultHistoryTableFormat  = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	nonHumanHistoryTableFormat = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
)

var historyHeader = map[string]string{
	"ID":           "IMAGE",
	"CreatedSince": createdSinceHeader,
	"CreatedAt":    createdAtHeader,
	"CreatedBy":    "CREATED BY",
	"Size":         sizeHeader,
	"Comment":      "COMMENT",
}

func historyFormat(source string, quiet, human bool) outputFormat {
	if source == tableFormatKey {
		switch {
		case quiet:
			return defaultQuietFormat
		case !human:
			return nonHumanHistoryTableFormat
		default:
			return defaultHistoryTableFormat
		}
	}
	return outputFormat(source)
}

func writeHistory(out io.Writer, format outputFormat, trunc, human bool, items []image.HistoryResponseItem) error {
	lw, err := newListWriter(out, format)
	if err != nil {
		return err
	}
	for _, h := range items {
		if err := lw.row(&historyRow{trunc: trunc, human: human, h: h}); err != nil {
			return err
		}
	}
	return lw.flush(historyHeader)
}

// historyRow is one layer of `berth history`; its methods are the
// placeholders of --format.
type historyRow struct {
	trunc bool
	human bool
	h     image.HistoryResponseItem
}

// historyEpoch: creation times at or before 2000 are placeholders
// (scratch-built layers), shown as N/A.
var historyEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func (r *historyRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *historyRow) ID() string {
	if r.trunc {
		return truncateID(r.h.ID)
	}
	return r.h.ID
}

func (r *historyRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }

func (r *historyRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	if r.h.Created <= historyEpoch {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(r.h.Created, 0))) + " ago"
}

func (r *historyRow) CreatedBy() string {
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		return ellipsis(s, 45)
	}
	return s
}

func (r *historyRow) Size() string {
	if r.human {
		return units.HumanSizeWithPrecision(float64(r.h.Size), 3)
	}
	return strconv.FormatInt(r.h.Size, 10)
}

func (r *historyRow) Comment() string { return r.h.Comment }

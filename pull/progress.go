package pull

import (
	"fmt"
	"strings"
	"sync"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
)

// Message is one line of Docker's JSON progress stream, with the fields
// pull produces. The wire names are dockerd's (jsonmessage.JSONMessage);
// the moby API module has the nested types but not the legacy "progress"
// and "error" strings, which the docker CLI still reads.
type Message struct {
	Status string `json:"status,omitempty"`
	// Detail is "progressDetail": {} on layer lines without a count, as
	// dockerd sends it.
	Detail *jsonstream.Progress `json:"progressDetail,omitempty"`
	// Progress is the bar dockerd renders, e.g. "[==>   ]  1.2MB/3.4MB".
	Progress string `json:"progress,omitempty"`
	ID       string `json:"id,omitempty"`
	// ErrorDetail and Error are set together on a failure line: only
	// errorDetail makes the CLI fail, older readers look at error.
	ErrorDetail *jsonstream.Error `json:"errorDetail,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// ErrorMessage is the stream line that reports err.
func ErrorMessage(err error) Message {
	return Message{ErrorDetail: &jsonstream.Error{Message: err.Error()}, Error: err.Error()}
}

// Layer statuses, exactly as dockerd words them.
const (
	statusPullingFSLayer   = "Pulling fs layer"
	statusWaiting          = "Waiting"
	statusDownloading      = "Downloading"
	statusVerifying        = "Verifying Checksum"
	statusDownloadComplete = "Download complete"
	statusExtracting       = "Extracting"
	statusPullComplete     = "Pull complete"
	statusAlreadyExists    = "Already exists"
)

// progressBar renders a count the way dockerd's stream formatter does
// (jsonmessage.JSONProgress.String with no terminal, so 200 columns and no
// time estimate, which dockerd never sends).
func progressBar(current, total int64) string {
	if current <= 0 && total <= 0 {
		return ""
	}
	if total <= 0 {
		return fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	pct := min(int(float64(current)/float64(total)*100)/2, 50)
	bar := fmt.Sprintf("[%s>%s] ", strings.Repeat("=", pct), strings.Repeat(" ", max(50-pct, 0)))
	cur := units.HumanSize(float64(current))
	if current > total {
		return bar + fmt.Sprintf("%8v", cur)
	}
	return bar + fmt.Sprintf("%8v/%v", cur, units.HumanSize(float64(total)))
}

// shortID is the 12-hex id a layer's lines carry.
func shortID(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

// emitter serialises one pull's messages: layer goroutines report
// concurrently, the callback sees one line at a time.
type emitter struct {
	mu sync.Mutex
	fn func(Message)
}

func (e *emitter) emit(m Message) {
	if e == nil || e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fn(m)
}

func (e *emitter) status(id, status string) {
	e.emit(Message{Status: status, ID: id})
}

// layer is a layer line without a count: progressDetail is {}.
func (e *emitter) layer(id, status string) {
	e.emit(Message{Status: status, ID: id, Detail: &jsonstream.Progress{}})
}

func (e *emitter) count(id, status string, current, total int64) {
	e.emit(Message{Status: status, ID: id,
		Detail:   &jsonstream.Progress{Current: current, Total: total},
		Progress: progressBar(current, total)})
}

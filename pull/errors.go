package pull

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// classErr carries dockerd's exact wording in Error() while matching an
// errdefs class, so the HTTP layer picks the status and prints the text
// unchanged (a plain %w around the class would prefix "not found: ").
type classErr struct {
	msg   string
	class error
	cause error
}

func (e *classErr) Error() string { return e.msg }
func (e *classErr) Unwrap() []error {
	if e.cause == nil {
		return []error{e.class}
	}
	return []error{e.class, e.cause}
}

func newClassErr(class, cause error, format string, args ...any) error {
	return &classErr{msg: fmt.Sprintf(format, args...), class: class, cause: cause}
}

// errInvalidReference is dockerd's answer to a name it cannot parse.
func errInvalidReference(cause error) error {
	return newClassErr(errdefs.ErrInvalidArgument, cause, "invalid reference format")
}

// notFound is the error of a repository or tag the registry does not have,
// worded as dockerd prints it against distribution's registry.
func notFound(named reference.Named, cause error) error {
	return newClassErr(errdefs.ErrNotFound, cause,
		"manifest for %s not found: manifest unknown: manifest unknown", reference.FamiliarString(named))
}

// diagnostic renders a registry error code the way distribution's errcode
// does: "UNAUTHORIZED" + "authentication required" → "unauthorized:
// authentication required".
func diagnostic(te *transport.Error) string {
	if len(te.Errors) == 0 {
		return fmt.Sprintf("received unexpected HTTP status: %d %s", te.StatusCode, http.StatusText(te.StatusCode))
	}
	d := te.Errors[0]
	code := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
	if d.Message == "" {
		return code
	}
	return code + ": " + d.Message
}

// requestPrefix is Go's url.Error style, which dockerd's messages carry:
// `Get "https://host/v2/...": `.
func requestPrefix(req *http.Request) string {
	if req == nil || req.URL == nil {
		return ""
	}
	m := req.Method
	if len(m) > 1 {
		m = m[:1] + strings.ToLower(m[1:])
	}
	u := *req.URL
	u.User = nil
	return fmt.Sprintf("%s %q: ", m, u.String())
}

func firstCode(te *transport.Error) transport.ErrorCode {
	if len(te.Errors) == 0 {
		return ""
	}
	return te.Errors[0].Code
}

// translateManifestError maps an error met while resolving named to what
// dockerd reports.
func translateManifestError(err error, named reference.Named) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch code := firstCode(te); {
		case code == transport.ManifestUnknownErrorCode, code == transport.NameUnknownErrorCode,
			code == "" && te.StatusCode == http.StatusNotFound:
			return notFound(named, err)
		}
	}
	return translateHTTPError(err)
}

// translateHTTPError classifies a registry error: credentials, denial,
// throttling, server faults and unreachable hosts.
func translateHTTPError(err error) error {
	if err == nil {
		return nil
	}
	var ce *classErr
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		msg := requestPrefix(te.Request) + diagnostic(te)
		code := firstCode(te)
		switch {
		case te.StatusCode == http.StatusUnauthorized || code == transport.UnauthorizedErrorCode:
			// Registries do not all send the UNAUTHORIZED code with a 401;
			// the message says what the status means, as dockerd's does.
			if code == "" || code == transport.UnknownErrorCode {
				detail := "authentication required"
				if len(te.Errors) > 0 && te.Errors[0].Message != "" {
					detail = te.Errors[0].Message
				}
				msg = requestPrefix(te.Request) + "unauthorized: " + detail
			}
			return newClassErr(errdefs.ErrUnauthenticated, err, "%s", msg)
		case te.StatusCode == http.StatusForbidden || code == transport.DeniedErrorCode:
			return newClassErr(errdefs.ErrPermissionDenied, err, "%s", msg)
		case te.StatusCode == http.StatusNotFound:
			return newClassErr(errdefs.ErrNotFound, err, "%s", msg)
		case te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500:
			return newClassErr(errdefs.ErrUnavailable, err, "%s", msg)
		}
		return newClassErr(errdefs.ErrUnknown, err, "%s", msg)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return newClassErr(errdefs.ErrUnavailable, err, "%s", err.Error())
	}
	return err
}

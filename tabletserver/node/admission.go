package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/proto/kvpb"
)

// foreground lists the Tablet methods admitted as foreground work, with
// whether they write (and so take write tokens). Background RPCs (upload,
// ingest, export, staged fetches) are paced inside the store; admin RPCs
// are rare and must get through an overloaded store.
var foreground = map[string]bool{
	kvpb.Tablet_Get_FullMethodName:                false,
	kvpb.Tablet_Scan_FullMethodName:               false,
	kvpb.Tablet_MutateRow_FullMethodName:          true,
	kvpb.Tablet_CheckAndMutateRow_FullMethodName:  true,
	kvpb.Tablet_ReadModifyWriteRow_FullMethodName: true,
	kvpb.Tablet_BatchMutate_FullMethodName:        true,
}

// admitter admits the store's foreground requests (internal/admission):
// a request without a CPU slot or write tokens in time gets ServerBusy
// with a retry-after hint instead of queueing until its deadline.
type admitter struct{ c *admission.Controller }

func (a admitter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	writes, ok := foreground[info.FullMethod]
	if !ok {
		return h(ctx, req)
	}
	var n int64
	if m, isMsg := req.(proto.Message); writes && isMsg {
		n = int64(proto.Size(m))
	}
	t, err := a.c.Admit(ctx, n)
	if err != nil {
		return nil, err
	}
	defer t.Release()
	return h(ctx, req)
}

// stream admits a Scan for as long as it streams. A Scan the client
// marked as a bulk read (admission.BulkReadHeader) is not foreground
// work: the store paces it in the Export class as it reads.
func (a admitter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if _, ok := foreground[info.FullMethod]; !ok {
		return h(srv, ss)
	}
	if info.FullMethod == kvpb.Tablet_Scan_FullMethodName && admission.IsBulkRead(ss.Context()) {
		return h(srv, ss)
	}
	t, err := a.c.Admit(ss.Context(), 0)
	if err != nil {
		return err
	}
	defer t.Release()
	return h(srv, ss)
}

// maxSettingsBody bounds a PUT /admission body.
const maxSettingsBody = 64 << 10

// serveAdmission is the runtime setter of the admission settings on the
// status port: GET answers the settings and state as JSON; PUT takes
// settings (zero fields: defaults; classes not named keep theirs) and
// answers the new state. See docs/qos.md.
func serveAdmission(c *admission.Controller) (get, put http.HandlerFunc) {
	reply := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.State())
	}
	get = func(w http.ResponseWriter, _ *http.Request) { reply(w) }
	put = func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSettingsBody+1))
		if err != nil {
			http.Error(w, fmt.Sprintf("reading the settings: %v", err), http.StatusBadRequest)
			return
		}
		if len(body) > maxSettingsBody {
			http.Error(w, fmt.Sprintf("settings larger than %d bytes", maxSettingsBody), http.StatusRequestEntityTooLarge)
			return
		}
		var s admission.Settings
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			http.Error(w, fmt.Sprintf("admission settings are not valid JSON: %v", err), http.StatusBadRequest)
			return
		}
		if err := c.Update(s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(w)
	}
	return get, put
}

// A client of `chatd --sum` written the way the Java course writes its
// SimpleClient and MultithreadedClients: DataOutputStream.writeUTF for the
// greeting (this side's address), then writeInt pairs, each answered by one
// readInt. Used by tests/services.rs when a JDK is installed.
//
// Usage: java SumClient HOST PORT THREADS A1 B1 [A2 B2 ...]
// Each of THREADS connections sends every pair in turn and prints one line
// per answer: "T: A + B = SUM" (T is the thread's number, from 0).

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;

public class SumClient {
    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int threads = Integer.parseInt(args[2]);
        int[] numbers = new int[args.length - 3];
        for (int i = 0; i < numbers.length; i++) {
            numbers[i] = Integer.parseInt(args[3 + i]);
        }
        Thread[] running = new Thread[threads];
        final boolean[] failed = {false};
        for (int t = 0; t < threads; t++) {
            final int id = t;
            running[t] = new Thread(() -> {
                try {
                    converse(host, port, id, numbers);
                } catch (IOException e) {
                    synchronized (failed) {
                        failed[0] = true;
                    }
                    System.err.println(id + ": " + e);
                }
            });
            running[t].start();
        }
        for (Thread t : running) {
            t.join();
        }
        System.exit(failed[0] ? 1 : 0);
    }

    static void converse(String host, int port, int id, int[] numbers) throws IOException {
        try (Socket socket = new Socket(host, port)) {
            socket.setSoTimeout(10000);
            DataOutputStream out = new DataOutputStream(socket.getOutputStream());
            DataInputStream in = new DataInputStream(socket.getInputStream());
            out.writeUTF(socket.getLocalAddress().getHostAddress());
            for (int i = 0; i + 1 < numbers.length; i += 2) {
                out.writeInt(numbers[i]);
                out.writeInt(numbers[i + 1]);
                int sum = in.readInt();
                synchronized (System.out) {
                    System.out.println(id + ": " + numbers[i] + " + " + numbers[i + 1] + " = " + sum);
                }
            }
        }
    }
}
